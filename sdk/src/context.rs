//! The context a link runs in: names, the vCon uuid and the link's options.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::LinkError;
use crate::bindings::vcon::conserver0_1_0::types as wit;

/// Where and why a link is being called, with its options from the config.
#[derive(Debug, Clone)]
pub struct Context {
    /// The link's name under `links:` in the config.
    pub link_name: String,
    /// The chain running the link.
    pub chain_name: String,
    /// The uuid of the vCon being processed.
    pub vcon_uuid: String,
    /// The ingress list the vCon was taken from.
    pub ingress_list: String,
    /// The link's `options` (an empty object when the config has none).
    pub options: Map<String, Value>,
}

impl Context {
    pub(crate) fn from_wit(ctx: wit::Context) -> Result<Self, LinkError> {
        let options = match serde_json::from_str::<Value>(&ctx.options) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            Ok(other) => {
                return Err(LinkError::fatal(format!(
                    "options of link `{}` must be a mapping, got {other}",
                    ctx.link_name
                )));
            }
            Err(e) => {
                return Err(LinkError::fatal(format!("options of link `{}` are not JSON: {e}", ctx.link_name)));
            }
        };
        Ok(Self {
            link_name: ctx.link_name,
            chain_name: ctx.chain_name,
            vcon_uuid: ctx.vcon_uuid,
            ingress_list: ctx.ingress_list,
            options,
        })
    }

    /// Build a context by hand, for unit tests of a link.
    pub fn for_test(link_name: &str, options: Value) -> Self {
        Self {
            link_name: link_name.to_string(),
            chain_name: "test".to_string(),
            vcon_uuid: String::new(),
            ingress_list: "test".to_string(),
            options: match options {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    /// Read option `key`, or `default` when it is absent or null. A present value of
    /// the wrong type is an error naming the option.
    pub fn option_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, LinkError> {
        match self.options.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| LinkError::fatal(format!("option `{key}` of link `{}` is invalid: {e}", self.link_name))),
        }
    }

    /// Read all options into a typed struct. Use `#[serde(default)]` on the struct
    /// so absent options take their defaults.
    pub fn options_as<T: DeserializeOwned>(&self) -> Result<T, LinkError> {
        serde_json::from_value(Value::Object(self.options.clone()))
            .map_err(|e| LinkError::fatal(format!("options of link `{}` are invalid: {e}", self.link_name)))
    }
}
