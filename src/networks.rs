//! The only file that names concrete adapters (each behind its cargo feature).

use crate::config::{Config, ConfigError, Problem};
use causeway_api::Network;
use std::sync::Arc;

/// Build every network that has a `[networks.<name>]` section.
pub fn build(config: &Config) -> Result<Vec<Arc<dyn Network>>, ConfigError> {
    let mut built: Vec<Arc<dyn Network>> = Vec::new();
    for name in config.networks.keys() {
        match name.as_str() {
            #[cfg(feature = "demo")]
            "demo" => {
                let section = config.network_section::<causeway_demo::DemoConfig>(name)?;
                built.push(Arc::new(causeway_demo::DemoNetwork::new(section).0));
            }
            #[cfg(feature = "discord")]
            "discord" => {
                let section = config.network_section::<causeway_discord::DiscordConfig>(name)?;
                let net = causeway_discord::DiscordNetwork::new(section).map_err(|problems| {
                    ConfigError(
                        problems
                            .into_iter()
                            .map(|(key, message)| Problem {
                                key: format!("networks.{name}.{key}"),
                                message,
                            })
                            .collect(),
                    )
                })?;
                built.push(Arc::new(net));
            }
            other => {
                return Err(ConfigError(vec![Problem {
                    key: format!("networks.{other}"),
                    message: "no such network in this build".into(),
                }]))
            }
        }
    }
    Ok(built)
}
