//! crm-sim (under construction).
