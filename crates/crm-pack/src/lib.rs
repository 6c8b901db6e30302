//! crm-pack (under construction).
