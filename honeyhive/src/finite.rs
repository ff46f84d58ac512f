//! Finds non-finite floats in a value before it is turned into JSON.
//!
//! serde_json writes NaN and infinity as `null` without a word, which would
//! silently change what the user logged. This serializer walks a value the
//! way serde_json would and reports the path of the first non-finite float,
//! so the event can be refused instead.

use std::fmt;

use serde::ser::{self, Serialize};

/// The path (such as `scores[2]` or `usage.cost`) of the first NaN or
/// infinity in `value`, if there is one.
pub(crate) fn first_non_finite<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut path = Vec::new();
    match value.serialize(Checker { path: &mut path }) {
        Ok(()) => None,
        Err(Found(at)) => at,
    }
}

/// The error that stops the walk: where the non-finite float is, or `None`
/// when the value's own `Serialize` impl failed. That failure is not ours
/// to judge here: serde_json meets it too and reports it with its message.
#[derive(Debug)]
struct Found(Option<String>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(at) => write!(f, "non-finite number at {at}"),
            None => f.write_str("the value failed to serialize"),
        }
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Found(None)
    }
}

enum Step {
    Field(String),
    Index(usize),
}

struct Checker<'a> {
    path: &'a mut Vec<Step>,
}

impl Checker<'_> {
    fn float(self, v: f64) -> Result<(), Found> {
        if v.is_finite() {
            Ok(())
        } else {
            let mut at = String::new();
            for step in self.path.iter() {
                match step {
                    Step::Field(name) if at.is_empty() => at.push_str(name),
                    Step::Field(name) => {
                        at.push('.');
                        at.push_str(name);
                    }
                    Step::Index(i) => at.push_str(&format!("[{i}]")),
                }
            }
            Err(Found(Some(at)))
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, step: Step, value: &T) -> Result<(), Found> {
        self.path.push(step);
        let result = value.serialize(Checker { path: self.path });
        self.path.pop();
        result
    }
}

/// Compound serializers share one shape: count positions, name fields.
struct Compound<'a> {
    checker: Checker<'a>,
    index: usize,
    key: Option<String>,
}

impl<'a> Compound<'a> {
    fn new(checker: Checker<'a>) -> Self {
        Compound {
            checker,
            index: 0,
            key: None,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Found> {
        let index = self.index;
        self.index += 1;
        self.checker.nested(Step::Index(index), value)
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Found> {
        self.checker.nested(Step::Field(name.to_owned()), value)
    }
}

macro_rules! ok_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _v: $ty) -> Result<(), Found> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for Checker<'a> {
    type Ok = ();
    type Error = Found;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    ok_scalars!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8],
    );

    fn serialize_f32(self, v: f32) -> Result<(), Found> {
        self.float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Found> {
        self.float(v)
    }
    fn serialize_none(self) -> Result<(), Found> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Found> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Found> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Found> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Found> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Found> {
        self.nested(Step::Field(variant.to_owned()), value)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Found> {
        Ok(Compound::new(self))
    }
}

/// The positional compound serializers differ only in names.
macro_rules! positional {
    ($($kind:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$kind for Compound<'_> {
            type Ok = ();
            type Error = Found;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Found> {
                self.element(value)
            }
            fn end(self) -> Result<(), Found> {
                Ok(())
            }
        }
    )*};
}

positional!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// So do the ones with named fields.
macro_rules! named {
    ($($kind:ident),* $(,)?) => {$(
        impl ser::$kind for Compound<'_> {
            type Ok = ();
            type Error = Found;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                name: &'static str,
                value: &T,
            ) -> Result<(), Found> {
                self.field(name, value)
            }
            fn end(self) -> Result<(), Found> {
                Ok(())
            }
        }
    )*};
}

named!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Found;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Found> {
        // JSON keys are strings; serde_json turns string-like and integer keys
        // into them, and this mirrors that closely enough to name the place.
        self.key = Some(
            serde_json::to_value(key)
                .ok()
                .map(|k| match k {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "?".to_owned()),
        );
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Found> {
        let key = self.key.take().unwrap_or_else(|| "?".to_owned());
        self.field(&key, value)
    }
    fn end(self) -> Result<(), Found> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(serde::Serialize)]
    struct Usage {
        tokens: u32,
        cost: f64,
        scores: Vec<f32>,
        extra: Option<BTreeMap<String, f64>>,
    }

    #[test]
    fn names_the_path_of_the_first_non_finite_float() {
        let fine = Usage {
            tokens: 3,
            cost: 0.5,
            scores: vec![1.0, 2.0],
            extra: None,
        };
        assert_eq!(first_non_finite(&fine), None);

        let nan_in_list = Usage {
            scores: vec![1.0, f32::NAN],
            ..fine
        };
        assert_eq!(first_non_finite(&nan_in_list).as_deref(), Some("scores[1]"));

        let inf_in_map = Usage {
            tokens: 1,
            cost: 0.0,
            scores: vec![],
            extra: Some(BTreeMap::from([("latency".to_owned(), f64::INFINITY)])),
        };
        assert_eq!(
            first_non_finite(&inf_in_map).as_deref(),
            Some("extra.latency")
        );
        assert_eq!(first_non_finite(&f64::NEG_INFINITY).as_deref(), Some(""));
    }

    #[test]
    fn a_value_that_fails_to_serialize_is_not_a_non_finite_number() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("no"))
            }
        }
        assert_eq!(first_non_finite(&Refuses), None);
        assert_eq!(first_non_finite(&vec![Refuses]), None);
    }
}
