//! The one walk over an event tree: every event, depth first, each before
//! its children, with its [`Place`]. The mask, the ids, the checks, the
//! cut, the size estimate and the flattening for the `/v1` routes all go
//! through it.

use std::convert::Infallible;
use std::fmt;

use crate::api::types::Event as Wire;

/// Where an event sits in its tree: its index among its parent's
/// children, and its parent's place (none for the root). Kept on the
/// walk's stack, so a walk allocates nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place<'a> {
    index: usize,
    parent: Option<&'a Place<'a>>,
}

impl Place<'_> {
    /// The root's place.
    const ROOT: Place<'static> = Place {
        index: 0,
        parent: None,
    };

    /// How many events lie above this one (0 for the root).
    pub(crate) fn depth(&self) -> usize {
        self.parent.map_or(0, |parent| parent.depth() + 1)
    }

    /// Whether this is the root's place.
    pub(crate) fn is_root(&self) -> bool {
        self.parent.is_none()
    }
}

impl fmt::Display for Place<'_> {
    /// The prefix of a field's name in this event: `children[2].children[0].`,
    /// nothing for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parent {
            None => Ok(()),
            Some(parent) => write!(f, "{parent}children[{}].", self.index),
        }
    }
}

/// The walk and its infallible form, written once for events to read
/// ([`visit`], [`each`]) and to change ([`visit_mut`], [`each_mut`]).
macro_rules! walk {
    ($visit:ident, $each:ident, [$($mut_:tt)?], $iter:ident, $doc:literal) => {
        #[doc = $doc]
        ///
        /// # Errors
        /// The first `f` returned.
        pub(crate) fn $visit<E>(
            event: &$($mut_)? Wire,
            f: &mut impl FnMut(&$($mut_)? Wire, Place<'_>) -> Result<(), E>,
        ) -> Result<(), E> {
            fn go<E>(
                event: &$($mut_)? Wire,
                place: Place<'_>,
                f: &mut impl FnMut(&$($mut_)? Wire, Place<'_>) -> Result<(), E>,
            ) -> Result<(), E> {
                f(event, place)?;
                let parent = Some(&place);
                for (index, child) in event.children.$iter().enumerate() {
                    go(child, Place { index, parent }, f)?;
                }
                Ok(())
            }
            go(event, Place::ROOT, f)
        }

        #[doc = concat!("[`", stringify!($visit), "`] with an `f` that cannot fail.")]
        pub(crate) fn $each(event: &$($mut_)? Wire, mut f: impl FnMut(&$($mut_)? Wire, Place<'_>)) {
            let Ok(()) = $visit(event, &mut |event, place| {
                f(event, place);
                Ok::<(), Infallible>(())
            });
        }
    };
}

walk!(
    visit,
    each,
    [],
    iter,
    "Calls `f` on `event` and each of its descendants, depth first, each \
     before its children; stops at the first error, and returns it."
);
walk!(
    visit_mut,
    each_mut,
    [mut],
    iter_mut,
    "[`visit`], each event given to change (its `children` too: `f` may \
     take them, and the walk goes on into what it leaves there)."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn tree() -> Wire {
        Event::chain("a")
            .child(Event::tool("b").child(Event::tool("c")))
            .child(
                Event::tool("d")
                    .child(Event::tool("e"))
                    .child(Event::tool("f")),
            )
            .into_api()
            .unwrap()
    }

    #[test]
    fn every_event_is_visited_depth_first_each_before_its_children_with_its_place() {
        let mut seen = Vec::new();
        each(&tree(), |event, place| {
            seen.push(format!(
                "{}:{place}:{}",
                event.event_name.as_deref().unwrap(),
                place.depth()
            ));
        });
        assert_eq!(
            seen,
            [
                "a::0",
                "b:children[0].:1",
                "c:children[0].children[0].:2",
                "d:children[1].:1",
                "e:children[1].children[0].:2",
                "f:children[1].children[1].:2",
            ]
        );
    }

    #[test]
    fn the_walk_stops_at_the_first_error_and_changes_reach_every_event() {
        let mut wire = tree();
        let mut visited = 0;
        let stopped = visit(&wire, &mut |event, place| {
            visited += 1;
            match event.event_name.as_deref() {
                Some("d") => Err(place.to_string()),
                _ => Ok(()),
            }
        });
        assert_eq!(stopped, Err("children[1].".to_owned()));
        assert_eq!(visited, 4, "nothing after d");
        each_mut(&mut wire, |event, place| {
            event.source = Some(format!("{}", place.is_root()));
        });
        let mut sources = Vec::new();
        each(&wire, |event, _| {
            sources.push(event.source.clone().unwrap())
        });
        assert_eq!(
            sources,
            ["true", "false", "false", "false", "false", "false"]
        );
    }
}
