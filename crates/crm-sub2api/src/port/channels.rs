//! Channels and their pricing rows across the border.

use crate::admin::ChannelInput;
use crate::wire;
use crm_domain::HostObjectId;
use crm_domain::observed::{ChannelDraft, ChannelPricing, HostChannel};

/// An observed channel.
pub fn channel_from_wire(c: wire::Channel) -> HostChannel {
    HostChannel {
        id: HostObjectId(c.id),
        name: c.name,
        description: c.description,
        status: c.status,
        group_ids: c.group_ids.into_iter().map(HostObjectId).collect(),
        model_pricing: c
            .model_pricing
            .into_iter()
            .map(|r| ChannelPricing {
                platform: r.platform,
                models: r.models,
                billing_mode: r.billing_mode,
                input_price: r.input_price,
                output_price: r.output_price,
                cache_write_price: r.cache_write_price,
                cache_read_price: r.cache_read_price,
            })
            .collect(),
        model_mapping: c.model_mapping,
        billing_model_source: c.billing_model_source,
        restrict_models: c.restrict_models,
    }
}

/// The create/update body for a channel draft.
pub fn channel_input(d: &ChannelDraft) -> ChannelInput {
    ChannelInput {
        name: d.name.clone(),
        description: d.description.clone(),
        group_ids: d.group_ids.iter().map(|g| g.0).collect(),
        model_pricing: d
            .model_pricing
            .iter()
            .map(|p| wire::PricingRow {
                id: None,
                platform: p.platform.clone(),
                models: p.models.clone(),
                billing_mode: p.billing_mode.clone(),
                input_price: p.input_price,
                output_price: p.output_price,
                cache_write_price: p.cache_write_price,
                cache_read_price: p.cache_read_price,
                image_output_price: None,
                per_request_price: None,
                intervals: Vec::new(),
            })
            .collect(),
        model_mapping: d.model_mapping.clone(),
        billing_model_source: d.billing_model_source.clone(),
        restrict_models: d.restrict_models,
        status: None,
    }
}
