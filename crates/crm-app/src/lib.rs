//! crm-app (under construction).
