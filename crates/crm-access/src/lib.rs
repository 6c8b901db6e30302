//! crm-access (under construction).
