//! crm-sub2api (under construction).
