//! A string that must never be printed: passwords and URLs that contain them.

use std::fmt;

/// A secret string, such as a password.
///
/// It does not implement [`Display`](fmt::Display): printing one with `{}`
/// does not compile, so a secret cannot slip into a message or a log line
/// by accident. Its [`Debug`](fmt::Debug) output is always `[REDACTED]`, so
/// a `Secret` can sit inside structs that are logged or debug-printed.
/// Call [`Secret::expose`] to get at the value, and only where it is really
/// needed (handing it to the server or to another program).
///
/// The buffer is overwritten with zeros when the value is dropped (a
/// best-effort measure: copies made before the value was wrapped are not
/// covered).
///
/// ```
/// use pgharbor_conn::Secret;
///
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "[REDACTED]");
/// assert_eq!(password.expose(), "hunter2");
/// ```
///
/// A secret given to `{}` is a compile error:
///
/// ```compile_fail,E0277
/// use pgharbor_conn::Secret;
///
/// let password = Secret::new("hunter2");
/// let message = format!("connecting with {password}");
/// ```
///
/// and so is one given to a `to_string()`:
///
/// ```compile_fail,E0599
/// use pgharbor_conn::Secret;
///
/// let leaked: String = Secret::new("hunter2").to_string();
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Returns the secret value. Never log or print what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("s3cr3t-value");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s:#?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([REDACTED])");
        assert_eq!(s.expose(), "s3cr3t-value");
        assert!(!s.is_empty());
        assert!(Secret::default().is_empty());
    }

    /// `Probe::<T>::DISPLAY` is the inherent constant (true) when `T`
    /// implements `Display`, else the trait's default (false).
    struct Probe<T>(std::marker::PhantomData<T>);

    trait NoDisplay {
        const DISPLAY: bool = false;
    }

    impl<T> NoDisplay for Probe<T> {}

    impl<T: fmt::Display> Probe<T> {
        const DISPLAY: bool = true;
    }

    /// Checked when the tests compile: they do not, if `Secret` gains `Display`.
    #[test]
    fn there_is_no_display_to_misuse() {
        const { assert!(Probe::<String>::DISPLAY, "the probe sees Display") };
        const {
            assert!(
                !Probe::<Secret>::DISPLAY,
                "Secret must not implement Display"
            )
        };
    }

    #[test]
    fn conversions() {
        assert_eq!(Secret::from("a"), Secret::new(String::from("a")));
        assert_eq!(Secret::from(String::from("b")).expose(), "b");
    }
}
