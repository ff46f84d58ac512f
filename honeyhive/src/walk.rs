//! One walk over any `Serialize` value that produces no output, for what
//! needs to look at a value the way serde_json will see it: the NaN check
//! (`finite.rs`) is its [`Visitor`].

use std::fmt;

use serde::ser::{self, Serialize};

/// What a walk tells its visitor. Every method has a do-nothing default.
pub(crate) trait Visitor {
    /// Whether the visitor wants [`enter`](Self::enter) and
    /// [`leave`](Self::leave): naming map keys costs an allocation each.
    const PATHS: bool = false;
    /// A float; `Err` stops the walk.
    fn float(&mut self, _value: f64) -> Result<(), Stop> {
        Ok(())
    }
    /// The walk goes into a field, map value or element.
    fn enter(&mut self, _step: Step) {}
    /// The walk comes back out of it.
    fn leave(&mut self) {}
}

/// A step into a value, for visitors that name places.
pub(crate) enum Step {
    Field(String),
    Index(usize),
}

/// Why a walk stopped early: its visitor said so (see [`Visitor::float`]),
/// or the value's own `Serialize` failed (serde_json will report why).
#[derive(Debug)]
pub(crate) struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the walk stopped")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Stop
    }
}

/// Walks `value` as serde_json would serialize it.
pub(crate) fn walk<T: Serialize + ?Sized, V: Visitor>(
    value: &T,
    visitor: &mut V,
) -> Result<(), Stop> {
    value.serialize(Walker(visitor))
}

struct Walker<'v, V>(&'v mut V);

/// A sequence, map or struct being walked.
struct Compound<'v, V> {
    visitor: &'v mut V,
    count: usize,
    key: Option<String>,
}

impl<'v, V: Visitor> Compound<'v, V> {
    fn new(visitor: &'v mut V) -> Self {
        Compound {
            visitor,
            count: 0,
            key: None,
        }
    }

    fn nested<T: Serialize + ?Sized>(
        &mut self,
        step: impl FnOnce() -> Step,
        value: &T,
    ) -> Result<(), Stop> {
        if V::PATHS {
            self.visitor.enter(step());
        }
        value.serialize(Walker(&mut *self.visitor))?;
        if V::PATHS {
            self.visitor.leave();
        }
        Ok(())
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let index = self.count;
        self.count += 1;
        self.nested(|| Step::Index(index), value)
    }

    fn named<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Stop> {
        self.nested(|| Step::Field(name.to_owned()), value)
    }
}

macro_rules! scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, _value: $ty) -> Result<(), Stop> {
            Ok(())
        })*
    };
}

impl<'v, V: Visitor> ser::Serializer for Walker<'v, V> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Compound<'v, V>;
    type SerializeTuple = Compound<'v, V>;
    type SerializeTupleStruct = Compound<'v, V>;
    type SerializeTupleVariant = Compound<'v, V>;
    type SerializeMap = Compound<'v, V>;
    type SerializeStruct = Compound<'v, V>;
    type SerializeStructVariant = Compound<'v, V>;

    scalars!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
    );

    fn serialize_f32(self, value: f32) -> Result<(), Stop> {
        self.0.float(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Result<(), Stop> {
        self.0.float(value)
    }
    fn serialize_str(self, _value: &str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Stop> {
        Ok(())
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
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        self.serialize_unit()
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
        Compound::new(self.0).named(variant, value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'v, V>, Stop> {
        Ok(Compound::new(self.0))
    }
}

/// The positional compounds differ only in their method's name.
macro_rules! sequences {
    ($($kind:ident :: $method:ident),* $(,)?) => {$(
        impl<V: Visitor> ser::$kind for Compound<'_, V> {
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

/// So do the named ones; a struct's fields sit inline in the struct.
macro_rules! structs {
    ($($kind:ident),* $(,)?) => {$(
        impl<V: Visitor> ser::$kind for Compound<'_, V> {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Stop> {
                self.named(name, value)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

structs!(SerializeStruct, SerializeStructVariant);

impl<V: Visitor> ser::SerializeMap for Compound<'_, V> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        if V::PATHS {
            // serde_json writes string-like and integer keys as strings.
            self.key = Some(match serde_json::to_value(key) {
                Ok(serde_json::Value::String(text)) => text,
                Ok(other) => other.to_string(),
                Err(_) => "?".to_owned(),
            });
        }
        key.serialize(Walker(&mut *self.visitor))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let key = self.key.take();
        self.nested(|| Step::Field(key.unwrap_or_default()), value)
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}
