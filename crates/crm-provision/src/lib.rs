//! crm-provision (under construction).
