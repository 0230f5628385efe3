//! Which paths pass without a token (`--public-path`): whole segments under a configured
//! prefix, and only paths that no upstream could resolve to somewhere else (dot segments, also
//! percent-encoded or with `;` parameters, encoded slashes, backslashes).

use percent_encoding::percent_decode_str;

/// The `--public-path` prefixes, checked at start-up.
#[derive(Debug, Clone, Default)]
pub struct PublicPaths(Vec<String>);

impl PublicPaths {
    /// Each prefix must start with `/`, must not be `/` itself (that is no gateway at all), and
    /// must hold no `.`/`..` segment and no `%`; a trailing `/` is dropped.
    ///
    /// # Errors
    /// A message naming the bad prefix.
    pub fn new(prefixes: &[String]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(prefixes.len());
        for prefix in prefixes {
            let trimmed = prefix.trim_end_matches('/');
            if !prefix.starts_with('/')
                || trimmed.is_empty()
                || trimmed.contains(['%', '?', '#', '\\'])
                || !path_is_plain(trimmed)
            {
                return Err(format!(
                    "--public-path {prefix:?}: a path like /static, not /, without dot segments or %"
                ));
            }
            out.push(trimmed.to_owned());
        }
        Ok(Self(out))
    }

    /// Whether `path` (the path forwarded, as the client sent it) is under a public prefix: on
    /// segment boundaries, and only if the path holds nothing an upstream could resolve to
    /// somewhere else. A path that fails these needs a token like any other.
    #[must_use]
    pub fn covers(&self, path: &str) -> bool {
        let under = self.0.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        under && path_is_plain(path)
    }
}

/// No segment of `path` is, after up to two rounds of percent-decoding and without `;`
/// parameters, `.` or `..`; no segment decodes to one holding `/` or `\`.
fn path_is_plain(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    path.split('/').all(|segment| {
        let mut current = segment.to_owned();
        for _ in 0..3 {
            let bare = current.split(';').next().unwrap_or_default();
            if bare == "." || bare == ".." || current.contains(['/', '\\', '\0']) {
                return false;
            }
            if !current.contains('%') {
                return true;
            }
            current = percent_decode_str(&current)
                .decode_utf8_lossy()
                .into_owned();
        }
        // Still percent-encoded after two decodings: nothing legitimate looks like that.
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_match_whole_segments_and_refuse_dot_tricks() {
        let p = PublicPaths::new(&["/public/".to_owned(), "/static".to_owned()]).expect("valid");
        for yes in [
            "/public",
            "/public/",
            "/public/a/b",
            "/static/app.js",
            "/public/%20x",
        ] {
            assert!(p.covers(yes), "{yes}");
        }
        for no in [
            "/publicity",
            "/private",
            "/",
            "/public/../private",
            "/public/..",
            "/public/%2e%2e/private",
            "/public/%2E./private",
            "/public/%252e%252e/private",
            "/public/..;/private",
            "/public/.;x/private",
            "/public/a%2f..%2fb",
            "/public\\..\\private",
            "//public/x",
            "/PUBLIC/x",
        ] {
            assert!(!p.covers(no), "{no}");
        }
        for bad in ["/", "public", "/a/../b", "/a%2f", ""] {
            assert!(PublicPaths::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
