//! The forwarded client-certificate decoders (`mtls::proxy::ForwardedCertConfig::certificate`)
//! for each `ClientCertHeader`: RFC 9440 `Client-Cert`, Envoy XFCC, nginx escaped PEM. Input:
//! one byte choosing the format, then the field values separated by `\n`. Oracles: untrusted
//! peers are never read; an absent or repeated field is reported as such; a certificate that
//! decodes re-encodes as RFC 9440 to the same DER.

#![no_main]
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tower_pop::mtls::proxy::{
    ClientCertHeader, ForwardedCert, ForwardedCertConfig, TrustedProxies, UntrustworthyReason,
};

const HEADERS: [ClientCertHeader; 3] = [
    ClientCertHeader::Rfc9440,
    ClientCertHeader::Xfcc,
    ClientCertHeader::Nginx,
];
const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

fn config_for(index: usize) -> &'static ForwardedCertConfig {
    static CONFIGS: [OnceLock<ForwardedCertConfig>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    CONFIGS[index].get_or_init(|| {
        let proxies = TrustedProxies::new([tower_pop_fuzz::PROXY_NETWORK]).expect("valid");
        ForwardedCertConfig::new(proxies, HEADERS[index])
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let config = config_for(usize::from(selector) % HEADERS.len());
    let values: Vec<&[u8]> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|b| *b == b'\n').collect()
    };
    assert_eq!(
        config.certificate(Some(STRANGER), values.iter().copied()),
        ForwardedCert::NotFromTrustedProxy
    );
    assert_eq!(
        config.certificate(None, values.iter().copied()),
        ForwardedCert::NotFromTrustedProxy
    );
    let outcome = config.certificate(Some(PROXY), values.iter().copied());
    assert_eq!(outcome.header_consulted(), !values.is_empty());
    match outcome {
        ForwardedCert::Absent => assert!(values.is_empty()),
        ForwardedCert::Untrustworthy(UntrustworthyReason::Repeated) => assert!(values.len() > 1),
        ForwardedCert::Untrustworthy(_) => assert_eq!(values.len(), 1),
        ForwardedCert::Certificate(der) => {
            assert_eq!(values.len(), 1);
            let encoded = format!(":{}:", STANDARD.encode(&der));
            assert_eq!(
                config_for(0).certificate(Some(PROXY), [encoded.as_bytes()]),
                ForwardedCert::Certificate(der)
            );
        }
        other => panic!("unexpected outcome from a trusted proxy: {other:?}"),
    }
});
