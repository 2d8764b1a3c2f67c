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
                let net = causeway_discord::DiscordNetwork::new(section)
                    .map_err(|p| problems(name, p))?;
                built.push(Arc::new(net));
            }
            #[cfg(feature = "matrix")]
            "matrix" => {
                let section = config.network_section::<causeway_matrix::MatrixConfig>(name)?;
                let net =
                    causeway_matrix::MatrixNetwork::new(section).map_err(|p| problems(name, p))?;
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

/// An adapter's (key, message) problems as config problems under `networks.<name>`.
#[allow(dead_code)] // unused when no adapter with its own checks is built in
fn problems(name: &str, list: Vec<(String, String)>) -> ConfigError {
    ConfigError(
        list.into_iter()
            .map(|(key, message)| Problem {
                key: format!("networks.{name}.{key}"),
                message,
            })
            .collect(),
    )
}

/// The Matrix appservice registration for this config: where to write it, and the YAML
/// (fresh tokens; the appservice URL is `networks.matrix.appservice_url`, else the HTTP
/// listener).
#[cfg(feature = "matrix")]
pub fn matrix_registration(config: &Config) -> Result<(std::path::PathBuf, String), ConfigError> {
    if !config.networks.contains_key("matrix") {
        return Err(problems(
            "matrix",
            vec![(String::new(), "no [networks.matrix] section".into())],
        ));
    }
    let section = config.network_section::<causeway_matrix::MatrixConfig>("matrix")?;
    let bad = section.problems();
    if !bad.is_empty() {
        return Err(problems("matrix", bad));
    }
    let url = if section.appservice_url.is_empty() {
        if config.http.listen.is_empty() {
            return Err(problems(
                "matrix",
                vec![(
                    "appservice_url".into(),
                    "needed when [http] listen is empty".into(),
                )],
            ));
        }
        format!("http://{}", config.http.listen)
    } else {
        section.appservice_url.clone()
    };
    let reg = causeway_matrix::Registration::generate(&section, &url);
    Ok((section.registration.clone(), reg.to_yaml()))
}
