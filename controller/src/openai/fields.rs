//! Reading a request body field by field, so that every error names the field as the client
//! spelled it (a serde error inside a flattened struct names none), and every field nothing
//! read is refused by name instead of being ignored.

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// 422 for JSON of the wrong shape at `param` (a wrong type, a missing field): the status a
/// typed body has always had here.
pub fn wrong_shape(param: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        param: (!param.is_empty()).then(|| param.to_string()),
        ..ApiError::invalid_param(param, message)
    }
}

/// Reads `value` as `T`; the error names `path`.
pub fn parse<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| wrong_shape(path, format!("invalid value for '{path}': {e}")))
}

/// A JSON object whose fields are taken one at a time.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    /// Where the object sits in the body: "" for the body, "messages[0]" for a message.
    path: String,
}

impl Fields {
    /// The object at `path`; any other JSON value is a 422 naming it.
    pub fn new(value: Value, path: &str) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_string(),
            }),
            other => {
                let what = if path.is_empty() { "the body" } else { path };
                Err(wrong_shape(
                    path,
                    format!("{what} must be a JSON object, got {}", kind(&other)),
                ))
            }
        }
    }

    /// The client's name for field `name` of this object.
    pub fn path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Removes a field. JSON null counts as absent, as in OpenAI's API.
    pub fn raw(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// Removes a field and reads it as `T`; a value of the wrong type is a 422 naming it.
    pub fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        let path = self.path(name);
        self.raw(name).map(|v| parse(v, &path)).transpose()
    }

    /// Like [`Fields::take`], for a field that must be there.
    pub fn require<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, ApiError> {
        let path = self.path(name);
        self.take(name)?
            .ok_or_else(|| wrong_shape(&path, format!("missing field `{path}`")))
    }

    /// Accepts a field only with a value that asks for nothing this server does not do (an
    /// empty `tools` list, `tool_choice: "none"`): any other value is refused as unsupported.
    pub fn only_noop(
        &mut self,
        name: &str,
        noop: impl Fn(&Value) -> bool,
        why: &str,
    ) -> Result<(), ApiError> {
        match self.raw(name) {
            Some(v) if !noop(&v) => {
                let path = self.path(name);
                Err(ApiError::unsupported_param(
                    &path,
                    format!("'{path}' is not supported: {why}"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Refuses the first field nothing took (null ones are absent).
    pub fn finish(self) -> Result<(), ApiError> {
        let path = self.path.clone();
        match self.map.into_iter().find(|(_, v)| !v.is_null()) {
            Some((name, _)) => {
                let param = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                Err(ApiError::unsupported_param(
                    &param,
                    format!("'{param}' is not supported by this server"),
                ))
            }
            None => Ok(()),
        }
    }
}

/// A JSON value's kind, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An integer field in `lo..=hi`: a non-integer is a 422, an integer out of range a 400.
pub fn int_in(f: &mut Fields, name: &str, lo: i64, hi: i64) -> Result<Option<u32>, ApiError> {
    let Some(v) = f.take::<i64>(name)? else {
        return Ok(None);
    };
    if !(lo..=hi).contains(&v) {
        return Err(ApiError::invalid_param(
            &f.path(name),
            format!("'{}' must be between {lo} and {hi}, got {v}", f.path(name)),
        ));
    }
    // In range of u32: both bounds are.
    Ok(u32::try_from(v).ok())
}

/// A number field in `lo..=hi` (400 outside, 422 for a non-number).
pub fn float_in(f: &mut Fields, name: &str, lo: f32, hi: f32) -> Result<Option<f32>, ApiError> {
    match f.take::<f32>(name)? {
        Some(x) if !(lo..=hi).contains(&x) => Err(ApiError::invalid_param(
            &f.path(name),
            format!("'{}' must be between {lo} and {hi}, got {x}", f.path(name)),
        )),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field_with_its_path() {
        let mut f =
            Fields::new(json!({"a": "x", "b": null, "c": 3, "d": 9}), "messages[2]").unwrap();
        let e = f.take::<f32>("a").unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.param.as_deref(), Some("messages[2].a"));
        assert!(e.message.contains("\"x\""), "{}", e.message);
        assert_eq!(f.take::<f32>("b").unwrap(), None, "null is absent");
        assert_eq!(
            f.require::<String>("zz").unwrap_err().param.as_deref(),
            Some("messages[2].zz")
        );
        let e = int_in(&mut f, "c", 5, 8).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (400, Some("messages[2].c"))
        );
        let e = f.finish().unwrap_err();
        assert_eq!(e.code, "unsupported_parameter");
        assert_eq!(e.param.as_deref(), Some("messages[2].d"));
    }

    #[test]
    fn noop_values_pass_and_others_are_unsupported() {
        let mut f = Fields::new(json!({"tools": [], "tool_choice": "auto"}), "").unwrap();
        f.only_noop("tools", |v| v == &json!([]), "no tools")
            .unwrap();
        let e = f
            .only_noop("tool_choice", |v| v == "none", "no tools")
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        assert_eq!(e.code, "unsupported_parameter");
        f.finish().unwrap();
        let e = Fields::new(json!([1]), "").unwrap_err();
        assert_eq!((e.status.as_u16(), e.param), (422, None));
    }
}
