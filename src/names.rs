//! Enums whose values have one command-line name each: the list of values, the name, parsing
//! and printing are generated from one table by [`named_enum!`].

/// A name that matches none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{given}', expected one of: {expected}")]
pub struct UnknownName {
    /// What was being named (`model`, `dataset`, …).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

/// Defines an enum from `Variant = "name" | "alias"…` lines and implements for it `ALL` (every
/// value, in table order), `name()`, `Display` (the name) and `FromStr` (names and aliases;
/// anything else is an [`UnknownName`] that lists the names).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $name:literal $(| $alias:literal)*,)+
        }
    ) => {
        $(#[$meta])*
        $vis enum $enum {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $enum {
            /// Every value, in the order the command line lists them.
            pub const ALL: [$enum; [$($name),+].len()] = [$($enum::$variant),+];

            /// The command-line name.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $enum {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name $(| $alias)* => Ok($enum::$variant),)+
                    _ => Err($crate::names::UnknownName {
                        what: $what,
                        given: s.to_string(),
                        expected: [$($name),+].join(", "),
                    }),
                }
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Shade("shade") {
            /// Light.
            Light = "light" | "pale",
            /// Dark.
            Dark = "dark",
        }
    }

    #[test]
    fn names_parse_print_and_list() {
        assert_eq!(Shade::ALL, [Shade::Light, Shade::Dark]);
        assert_eq!("pale".parse::<Shade>(), Ok(Shade::Light));
        assert_eq!("dark".parse::<Shade>(), Ok(Shade::Dark));
        assert_eq!(Shade::Light.to_string(), "light");
        let error = "grey".parse::<Shade>().unwrap_err().to_string();
        assert_eq!(error, "unknown shade 'grey', expected one of: light, dark");
    }
}
