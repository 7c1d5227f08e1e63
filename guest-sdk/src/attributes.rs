//! Attribute helpers on OTLP `KeyValue` lists.

use crate::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};

/// The string inside an `AnyValue`, if it holds one.
pub fn string_value(value: &AnyValue) -> Option<&str> {
    match &value.value {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn string_any(value: impl Into<String>) -> AnyValue {
    AnyValue { value: Some(Value::StringValue(value.into())) }
}

/// Lookup and edits by key on an attribute list.
pub trait AttributesExt {
    fn get(&self, key: &str) -> Option<&AnyValue>;
    fn get_str(&self, key: &str) -> Option<&str>;
    /// Sets `key` to a string value, replacing an existing value or appending.
    fn set_str(&mut self, key: &str, value: impl Into<String>);
    fn remove_key(&mut self, key: &str) -> Option<AnyValue>;
    /// Mutable access to every string value, with its key.
    fn string_values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)>;
}

impl AttributesExt for Vec<KeyValue> {
    fn get(&self, key: &str) -> Option<&AnyValue> {
        self.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
    }

    fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(string_value)
    }

    fn set_str(&mut self, key: &str, value: impl Into<String>) {
        match self.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = Some(string_any(value)),
            None => self.push(KeyValue { key: key.to_string(), value: Some(string_any(value)), ..Default::default() }),
        }
    }

    fn remove_key(&mut self, key: &str) -> Option<AnyValue> {
        let index = self.iter().position(|kv| kv.key == key)?;
        self.remove(index).value
    }

    fn string_values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)> {
        self.iter_mut().filter_map(|kv| match kv.value.as_mut().and_then(|v| v.value.as_mut()) {
            Some(Value::StringValue(s)) => Some((kv.key.as_str(), s)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_remove() {
        let mut attrs: Vec<KeyValue> = Vec::new();
        attrs.set_str("a", "1");
        attrs.set_str("b", "2");
        attrs.set_str("a", "3");
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs.get_str("a"), Some("3"));
        assert_eq!(attrs.remove_key("a").as_ref().and_then(string_value), Some("3"));
        assert_eq!(attrs.get("a"), None);
        for (_, value) in attrs.string_values_mut() {
            value.push('!');
        }
        assert_eq!(attrs.get_str("b"), Some("2!"));
    }
}
