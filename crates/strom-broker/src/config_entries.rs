//! Config entries as DescribeConfigs reports them: value, source, synonyms, type, doc.

use strom_cluster::MetadataImage;
use strom_cluster::config::{self as defs, ConfigSource, ConfigType, Effect};

use crate::config::BrokerConfig;

#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub kind: ConfigType,
    pub doc: &'static str,
    /// Every source that sets this config, highest precedence first (includes the winner).
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Every topic config of `topic`, resolved.
pub fn topic_entries(
    config: &BrokerConfig,
    image: &MetadataImage,
    topic: &str,
) -> Vec<ConfigEntry> {
    let layers = config.layers(image);
    let overrides = image.topic_configs(topic);
    defs::TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let resolved = layers.resolve(def, overrides);
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.and_then(|o| o.get(def.name)) {
                synonyms.push((
                    def.name.to_string(),
                    Some(v.clone()),
                    ConfigSource::DynamicTopic,
                ));
            }
            synonyms.extend(
                layers
                    .synonyms_of(def)
                    .into_iter()
                    .map(|r| (r.from, Some(r.value), r.source)),
            );
            ConfigEntry {
                name: def.name,
                value: Some(resolved.value),
                source: resolved.source,
                read_only: false,
                kind: def.kind,
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// Every broker property Strom uses, as seen by broker `broker` ("" for the cluster default).
pub fn broker_entries(
    config: &BrokerConfig,
    image: &MetadataImage,
    broker: &str,
) -> Vec<ConfigEntry> {
    let layers = config.layers(image);
    let cluster_default = broker.is_empty();
    defs::BROKER_CONFIGS
        .iter()
        .filter(|def| def.effect == Effect::Used)
        .map(|def| {
            let mut synonyms: Vec<(String, Option<String>, ConfigSource)> = Vec::new();
            let sources = [
                (
                    if cluster_default {
                        None
                    } else {
                        layers.dynamic_broker
                    },
                    ConfigSource::DynamicBroker,
                ),
                (layers.dynamic_default, ConfigSource::DynamicDefaultBroker),
                (
                    if cluster_default {
                        None
                    } else {
                        layers.static_broker
                    },
                    ConfigSource::StaticBroker,
                ),
            ];
            for (layer, source) in sources {
                if let Some(v) = layer.and_then(|l| l.get(def.name)) {
                    synonyms.push((def.name.to_string(), Some(v.clone()), source));
                }
            }
            if let Some(d) = def.default {
                synonyms.push((
                    def.name.to_string(),
                    Some(d.to_string()),
                    ConfigSource::Default,
                ));
            }
            let (value, source) = synonyms
                .first()
                .map_or((None, ConfigSource::Default), |(_, v, s)| (v.clone(), *s));
            ConfigEntry {
                name: def.name,
                value,
                source,
                read_only: !def.dynamic,
                kind: def.kind,
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}
