//! Session ids.

use std::fmt;
use std::sync::Arc;

/// The id of a HoneyHive session: the group an event is logged into.
///
/// Every API that takes a session id takes `impl Into<SessionId>`, so a
/// `&str`, a `String`, a [`uuid::Uuid`] or a `&`[`Session`](crate::Session) work as well.
///
/// ```
/// use honeyhive::SessionId;
///
/// let fresh = SessionId::new();
/// assert_eq!(fresh.as_str().len(), 36); // a UUIDv4
/// let given: SessionId = "checkout-flow-42".into();
/// assert_eq!(given.to_string(), "checkout-flow-42");
/// ```
///
/// Cloning is cheap (a reference count), so passing `&session_id` to every
/// call costs no allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// A new random session id (a UUIDv4).
    #[expect(
        clippy::new_without_default,
        reason = "a Default that mints a random id would make #[derive(Default)] on a user's \
                  struct start a new session silently"
    )]
    pub fn new() -> Self {
        SessionId(uuid::Uuid::new_v4().to_string().into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SessionId {
    fn from(id: &str) -> Self {
        SessionId(id.into())
    }
}

impl From<String> for SessionId {
    fn from(id: String) -> Self {
        SessionId(id.into())
    }
}

impl From<&String> for SessionId {
    fn from(id: &String) -> Self {
        SessionId(id.as_str().into())
    }
}

impl From<&SessionId> for SessionId {
    fn from(id: &SessionId) -> Self {
        id.clone()
    }
}

impl From<uuid::Uuid> for SessionId {
    fn from(id: uuid::Uuid) -> Self {
        SessionId(id.to_string().into())
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> Self {
        id.0.as_ref().to_owned()
    }
}

/// Compares the id's text: `id == "checkout-7"`.
impl PartialEq<str> for SessionId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

/// Compares the id's text: `id == "checkout-7"`.
impl PartialEq<&str> for SessionId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// Compares the id's text.
impl PartialEq<String> for SessionId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

/// As its text: `"checkout-7"`.
impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// From its text, as given (checked where it is used, as every id is).
impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(SessionId::from)
    }
}
