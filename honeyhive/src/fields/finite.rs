//! Finds non-finite floats in a value before it is turned into JSON.
//!
//! serde_json writes NaN and infinity as `null` without a word, which would
//! silently change what the user logged. This serializer produces no output:
//! it walks a value the way serde_json would, keeping the path it is at, and
//! stops at the first non-finite float, so the event can be refused instead.

use std::fmt;

use serde::ser::{self, Serialize};

/// The path (such as `scores[2]` or `usage.cost`) of the first NaN or
/// infinity in `value`, if there is one. A value whose own `Serialize`
/// fails has no path here: serde_json meets that failure too and reports it
/// with its message.
pub(crate) fn first_non_finite<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut path = Vec::new();
    match value.serialize(Walker(&mut path)) {
        Err(Stop::Found(at)) => Some(at),
        Ok(()) | Err(Stop::Failed) => None,
    }
}

/// A step into a value.
enum Step {
    Field(String),
    Index(usize),
}

/// Why a walk stopped.
#[derive(Debug)]
enum Stop {
    /// At a non-finite float, at this path.
    Found(String),
    /// The value's own `Serialize` failed.
    Failed,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the walk stopped")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Stop::Failed
    }
}

/// The path as people write it: `usage.cost`, `scores[2]`.
fn written(path: &[Step]) -> String {
    let mut at = String::new();
    for step in path {
        match step {
            Step::Field(name) if at.is_empty() => at.push_str(name),
            Step::Field(name) => {
                at.push('.');
                at.push_str(name);
            }
            Step::Index(i) => at.push_str(&format!("[{i}]")),
        }
    }
    at
}

struct Walker<'p>(&'p mut Vec<Step>);

/// A sequence, map or struct being walked.
struct Compound<'p> {
    path: &'p mut Vec<Step>,
    count: usize,
    key: Option<String>,
}

impl<'p> Compound<'p> {
    fn new(path: &'p mut Vec<Step>) -> Self {
        Compound {
            path,
            count: 0,
            key: None,
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, step: Step, value: &T) -> Result<(), Stop> {
        self.path.push(step);
        value.serialize(Walker(&mut *self.path))?;
        self.path.pop();
        Ok(())
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let index = self.count;
        self.count += 1;
        self.nested(Step::Index(index), value)
    }
}

macro_rules! fine {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _value: $ty) -> Result<(), Stop> {
            Ok(())
        })*
    };
}

impl<'p> ser::Serializer for Walker<'p> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Compound<'p>;
    type SerializeTuple = Compound<'p>;
    type SerializeTupleStruct = Compound<'p>;
    type SerializeTupleVariant = Compound<'p>;
    type SerializeMap = Compound<'p>;
    type SerializeStruct = Compound<'p>;
    type SerializeStructVariant = Compound<'p>;

    fine!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8],
    );

    fn serialize_f32(self, value: f32) -> Result<(), Stop> {
        self.serialize_f64(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Result<(), Stop> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(Stop::Found(written(self.0)))
        }
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        Compound::new(self.0).nested(Step::Field(variant.to_owned()), value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'p>, Stop> {
        Ok(Compound::new(self.0))
    }
}

/// The positional compounds differ only in their method's name.
macro_rules! sequences {
    ($($kind:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$kind for Compound<'_> {
            type Ok = ();
            type Error = Stop;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
                self.element(value)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

sequences!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// So do the named ones.
macro_rules! structs {
    ($($kind:ident),* $(,)?) => {$(
        impl ser::$kind for Compound<'_> {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Stop> {
                self.nested(Step::Field(name.to_owned()), value)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

structs!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        // serde_json writes string-like and integer keys as strings.
        self.key = Some(match serde_json::to_value(key) {
            Ok(serde_json::Value::String(text)) => text,
            Ok(other) => other.to_string(),
            Err(_) => "?".to_owned(),
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let key = self.key.take().unwrap_or_default();
        self.nested(Step::Field(key), value)
    }
    fn end(self) -> Result<(), Stop> {
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
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert_eq!(first_non_finite(&Refuses), None);
        assert_eq!(first_non_finite(&vec![Refuses]), None);
    }
}
