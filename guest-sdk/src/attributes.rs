//! Attribute helpers on OTLP `KeyValue` lists.
//!
//! [`AttributesExt`] reads (and edits string values in place) on
//! `Vec<KeyValue>` and `[KeyValue]`; [`AttributesVecExt`] adds, replaces and
//! removes entries of a `Vec<KeyValue>`. On a `&[KeyValue]`, `attrs.get(key)`
//! resolves to the slice's own `get(index)`: call [`AttributesExt::value`] there.

use crate::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};

/// The string inside an `AnyValue`, if it holds one.
pub fn string_value(value: &AnyValue) -> Option<&str> {
    match &value.value {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Rust values that become OTLP `AnyValue`s (strings, integers, floats, booleans).
pub trait IntoAnyValue {
    /// Converts the value into an OTLP `AnyValue`.
    fn into_any_value(self) -> AnyValue;
}

impl IntoAnyValue for AnyValue {
    fn into_any_value(self) -> AnyValue {
        self
    }
}

impl IntoAnyValue for Value {
    fn into_any_value(self) -> AnyValue {
        AnyValue { value: Some(self) }
    }
}

macro_rules! into_any_value {
    ($($ty:ty => |$v:ident| $body:expr),* $(,)?) => {
        $(impl IntoAnyValue for $ty {
            fn into_any_value(self) -> AnyValue {
                let $v = self;
                AnyValue { value: Some($body) }
            }
        })*
    };
}

into_any_value! {
    &str => |v| Value::StringValue(v.to_string()),
    String => |v| Value::StringValue(v),
    bool => |v| Value::BoolValue(v),
    i64 => |v| Value::IntValue(v),
    i32 => |v| Value::IntValue(i64::from(v)),
    f64 => |v| Value::DoubleValue(v),
}

/// One attribute: `kv("http.route", "/health")`, `kv("http.status_code", 200)`.
pub fn kv(key: impl Into<String>, value: impl IntoAnyValue) -> KeyValue {
    KeyValue { key: key.into(), value: Some(value.into_any_value()), ..Default::default() }
}

/// Lookups by key, and in-place edits of string values.
pub trait AttributesExt {
    /// The value of the first attribute named `key`.
    fn value(&self, key: &str) -> Option<&AnyValue>;

    /// Mutable access to every top-level string value, with its key.
    fn string_values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)>;

    /// Same as [`value`](Self::value) (on a `&[KeyValue]` the slice's inherent
    /// `get(index)` wins: use `value` there).
    fn get(&self, key: &str) -> Option<&AnyValue> {
        self.value(key)
    }

    /// The string value of the first attribute named `key`; `None` if absent or not a string.
    fn get_str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(string_value)
    }

    /// The int value of the first attribute named `key`; `None` if absent or not an int.
    fn get_i64(&self, key: &str) -> Option<i64> {
        match self.value(key)?.value {
            Some(Value::IntValue(i)) => Some(i),
            _ => None,
        }
    }

    /// The double value of the first attribute named `key`; `None` if absent or not a double (ints are not converted).
    fn get_f64(&self, key: &str) -> Option<f64> {
        match self.value(key)?.value {
            Some(Value::DoubleValue(d)) => Some(d),
            _ => None,
        }
    }

    /// The bool value of the first attribute named `key`; `None` if absent or not a bool.
    fn get_bool(&self, key: &str) -> Option<bool> {
        match self.value(key)?.value {
            Some(Value::BoolValue(b)) => Some(b),
            _ => None,
        }
    }

    /// Whether an attribute named `key` exists and has a value (an entry with no value counts as absent).
    fn contains_key(&self, key: &str) -> bool {
        self.value(key).is_some()
    }
}

impl AttributesExt for [KeyValue] {
    fn value(&self, key: &str) -> Option<&AnyValue> {
        self.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
    }

    fn string_values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)> {
        self.iter_mut().filter_map(|kv| match kv.value.as_mut().and_then(|v| v.value.as_mut()) {
            Some(Value::StringValue(s)) => Some((kv.key.as_str(), s)),
            _ => None,
        })
    }
}

// Implemented on `Vec` too so `attrs.get(key)` on a Vec finds this trait
// before auto-deref reaches the slice's inherent `get(index)`.
impl AttributesExt for Vec<KeyValue> {
    fn value(&self, key: &str) -> Option<&AnyValue> {
        self.as_slice().value(key)
    }

    fn string_values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)> {
        self.as_mut_slice().string_values_mut()
    }
}

/// Adding, replacing and removing attributes.
pub trait AttributesVecExt {
    /// Sets `key` to `value`, replacing an existing value or appending.
    fn set(&mut self, key: &str, value: impl IntoAnyValue);
    /// Sets `key` to a string value, replacing an existing value or appending.
    fn set_str(&mut self, key: &str, value: impl Into<String>);
    /// Removes every attribute named `key`; returns the first one's value.
    fn remove_key(&mut self, key: &str) -> Option<AnyValue>;
    /// Keeps the attributes whose key passes `keep`; returns how many were removed.
    fn retain_keys(&mut self, keep: impl FnMut(&str) -> bool) -> usize;
}

impl AttributesVecExt for Vec<KeyValue> {
    fn set(&mut self, key: &str, value: impl IntoAnyValue) {
        let value = value.into_any_value();
        match self.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = Some(value),
            None => self.push(KeyValue { key: key.to_string(), value: Some(value), ..Default::default() }),
        }
    }

    fn set_str(&mut self, key: &str, value: impl Into<String>) {
        self.set(key, Value::StringValue(value.into()));
    }

    fn remove_key(&mut self, key: &str) -> Option<AnyValue> {
        let index = self.iter().position(|kv| kv.key == key)?;
        let removed = self.remove(index).value;
        // Duplicate keys are invalid OTLP but occur; none may survive a removal.
        self.retain(|kv| kv.key != key);
        removed
    }

    fn retain_keys(&mut self, mut keep: impl FnMut(&str) -> bool) -> usize {
        let before = self.len();
        self.retain(|kv| keep(&kv.key));
        before - self.len()
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

    #[test]
    fn typed_values_on_slices() {
        let mut attrs = vec![kv("n", 3), kv("d", 1.5), kv("ok", true), kv("s", "x")];
        attrs.set("n", 4i64);
        let slice: &[KeyValue] = &attrs;
        assert_eq!(slice.get_i64("n"), Some(4));
        assert_eq!(slice.get_f64("d"), Some(1.5));
        assert_eq!(slice.get_bool("ok"), Some(true));
        assert_eq!(slice.value("s").and_then(string_value), Some("x"));
        assert_eq!(slice.get_str("n"), None, "an int is not a string");
        assert!(slice.contains_key("d") && !slice.contains_key("missing"));
        assert_eq!(attrs.retain_keys(|k| k != "d" && k != "ok"), 2);
        assert_eq!(attrs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(), ["n", "s"]);
    }

    #[test]
    fn remove_key_removes_duplicates() {
        let mut attrs = vec![kv("a", "1"), kv("b", "2"), kv("a", "3")];
        assert_eq!(attrs.remove_key("a").as_ref().and_then(string_value), Some("1"));
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs.remove_key("a"), None);
    }
}
