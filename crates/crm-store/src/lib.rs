//! crm-store (under construction).
