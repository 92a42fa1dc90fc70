//! What a listener needs to secure its connections, built once at start from the broker's
//! properties: its TLS config (reloaded when its files change), the SASL mechanisms it offers
//! with their users, and how a client certificate becomes a principal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use strom_security::sasl::SaslMechanism;
use strom_security::tls::SslProperties;
use strom_security::{PrincipalMapper, jaas::JaasConfig};

use crate::config::{BrokerConfig, ClientListener, SecurityProtocol};

pub struct ListenerSecurity {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub tls: Option<Tls>,
    pub sasl: Option<SaslSettings>,
    pub mapper: PrincipalMapper,
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSecurity")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// A SASL listener's settings.
#[derive(Debug, Clone)]
pub struct SaslSettings {
    pub mechanisms: Vec<SaslMechanism>,
    /// PLAIN users from the listener's JAAS line (`user_NAME="password"`).
    pub plain_users: BTreeMap<String, String>,
    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub max_receive_size: usize,
    /// `connections.max.reauth.ms`: how long a session lasts; 0 for ever.
    pub reauth_ms: i64,
}

impl ListenerSecurity {
    /// A PLAINTEXT listener: nothing to check, everyone is `User:ANONYMOUS`.
    pub fn plaintext(name: &str) -> Self {
        Self {
            name: name.to_string(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
            mapper: PrincipalMapper::default(),
        }
    }

    pub fn build(config: &BrokerConfig, listener: &ClientListener) -> Result<Self, String> {
        let get = |name: &str| config.listener_property(&listener.name, name);
        let prefix = |e: String| format!("listener {}: {e}", listener.name);
        let tls = if listener.protocol.uses_tls() {
            Some(Tls::load(&get).map_err(prefix)?)
        } else {
            None
        };
        let sasl = if listener.protocol.uses_sasl() {
            Some(sasl_settings(config, listener).map_err(prefix)?)
        } else {
            None
        };
        let rules = get("ssl.principal.mapping.rules").unwrap_or_default();
        let mapper = PrincipalMapper::parse(&rules).map_err(|e| prefix(e.to_string()))?;
        Ok(Self {
            name: listener.name.clone(),
            protocol: listener.protocol,
            tls,
            sasl,
            mapper,
        })
    }
}

fn sasl_settings(config: &BrokerConfig, listener: &ClientListener) -> Result<SaslSettings, String> {
    let get = |name: &str| config.listener_property(&listener.name, name);
    let mut mechanisms = Vec::new();
    for name in get("sasl.enabled.mechanisms")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let mechanism = SaslMechanism::from_name(name).ok_or_else(|| {
            format!(
                "sasl.enabled.mechanisms: {name} is not served (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are)"
            )
        })?;
        mechanisms.push(mechanism);
    }
    if mechanisms.is_empty() {
        return Err("sasl.enabled.mechanisms: a SASL listener needs a mechanism".into());
    }
    let plain_users = if mechanisms.contains(&SaslMechanism::Plain) {
        let property = format!(
            "listener.name.{}.plain.sasl.jaas.config",
            listener.name.to_ascii_lowercase()
        );
        let line = config
            .static_properties()
            .get(&property)
            .cloned()
            .or_else(|| get("sasl.jaas.config"))
            .ok_or_else(|| {
                format!("PLAIN needs its users in {property} (user_NAME=\"password\")")
            })?;
        JaasConfig::parse(&line)
            .map_err(|e| e.to_string())?
            .plain_users()
    } else {
        BTreeMap::new()
    };
    let number = |name: &str| -> Result<i64, String> {
        get(name)
            .unwrap_or_default()
            .trim()
            .parse::<i64>()
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(SaslSettings {
        mechanisms,
        plain_users,
        max_receive_size: number("sasl.server.max.receive.size")?.max(1) as usize,
        reauth_ms: number("connections.max.reauth.ms")?.max(0),
    })
}

/// A listener's TLS config, swapped whole when its key or trust store files change (new
/// connections get the new certificate; open ones keep theirs).
pub struct Tls {
    config: RwLock<Arc<ServerConfig>>,
    files: RwLock<Vec<(PathBuf, Option<SystemTime>)>>,
    properties: BTreeMap<&'static str, Option<String>>,
}

/// Every property a TLS config is built from; kept so a reload reads the same settings.
const TLS_PROPERTIES: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
];

impl Tls {
    fn load(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let properties: BTreeMap<&'static str, Option<String>> = TLS_PROPERTIES
            .iter()
            .map(|&name| (name, get(name)))
            .collect();
        let loaded = Self::read(&properties)?;
        Ok(Self {
            config: RwLock::new(loaded.config),
            files: RwLock::new(stamped(loaded.files)),
            properties,
        })
    }

    fn read(
        properties: &BTreeMap<&'static str, Option<String>>,
    ) -> Result<strom_security::tls::Loaded<ServerConfig>, String> {
        let get = |name: &str| properties.get(name).cloned().flatten();
        SslProperties::new(&get)
            .server_config()
            .map_err(|e| e.to_string())
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reloads when a file changed since the last load; a config that no longer loads keeps
    /// the old one serving and says why.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let changed = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(path, stamp)| modified(path) != *stamp);
        if !changed {
            return Ok(false);
        }
        let loaded = Self::read(&self.properties);
        // Stamp the files either way, so a broken file is reported once, not every check.
        let files = match &loaded {
            Ok(l) => l.files.clone(),
            Err(_) => self
                .files
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, _)| p.clone())
                .collect(),
        };
        *self.files.write().unwrap_or_else(|p| p.into_inner()) = stamped(files);
        let loaded = loaded?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = loaded.config;
        Ok(true)
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn stamped(files: Vec<PathBuf>) -> Vec<(PathBuf, Option<SystemTime>)> {
    files
        .into_iter()
        .map(|path| {
            let stamp = modified(&path);
            (path, stamp)
        })
        .collect()
}
