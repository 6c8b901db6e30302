//! crm-reconcile (under construction).
