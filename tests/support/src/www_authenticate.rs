//! Reading a `WWW-Authenticate` value the servers wrote: its challenges in order (RFC 9110
//! §11.6.1), so tests can check which scheme comes first and which carries the error.

/// The challenges of `value`, in order: `(scheme, parameters)`. A new challenge starts at
/// `, Bearer` or `, DPoP` followed by a space, a comma or the end (parameter values are quoted
/// and never hold those).
#[must_use]
pub fn challenges(value: &str) -> Vec<(String, String)> {
    let mut starts = vec![0];
    for scheme in ["Bearer", "DPoP"] {
        let needle = format!(", {scheme}");
        let mut from = 0;
        while let Some(at) = value[from..].find(&needle) {
            let at = from + at;
            let after = value[at + needle.len()..].chars().next();
            if matches!(after, None | Some(' ' | ',')) {
                starts.push(at + 2);
            }
            from = at + needle.len();
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut out = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(value.len(), |next| next - 2);
        let challenge = &value[start..end];
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        out.push((scheme.to_owned(), params.to_owned()));
    }
    out
}

/// The parameters of the challenge of `scheme` in `value`, if it has one.
#[must_use]
pub fn challenge_of(value: &str, scheme: &str) -> Option<String> {
    challenges(value)
        .into_iter()
        .find(|(s, _)| s == scheme)
        .map(|(_, params)| params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_in_order() {
        let v =
            r#"DPoP error="use_dpop_nonce", error_description="x", algs="ES256", Bearer realm="r""#;
        let c = challenges(v);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0, "DPoP");
        assert!(c[0].1.ends_with(r#"algs="ES256""#));
        assert_eq!(c[1], ("Bearer".to_owned(), r#"realm="r""#.to_owned()));
        assert_eq!(challenges("DPoP algs=\"ES256\", Bearer")[1].0, "Bearer");
        assert_eq!(
            challenge_of("Bearer, DPoP algs=\"E\"", "DPoP").as_deref(),
            Some("algs=\"E\"")
        );
    }
}
