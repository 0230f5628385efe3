//! Garbage in any header never yields 200, a panic or a 5xx (DPOP-19): a bounded,
//! deterministic walk over mutated headers.

use crate::support::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let i = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[i] = b"A-_.~=+/ ,\"{}01zZ"[rng.below(17)],
            1 => {
                bytes.remove(i);
            }
            2 => bytes.insert(i, b".=A,"[rng.below(4)]),
            _ => bytes.truncate(i),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn mutated_tokens_and_proofs_never_succeed() {
    let f = Fixture::with(|b| b.allow_bearer());
    let token = f.token();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let proof = f.proof(&token);
        let bad_token = mutate(&mut rng, &token);
        let bad_proof = mutate(&mut rng, &proof);
        let (auth, dpop) = match rng.below(3) {
            0 => (format!("DPoP {bad_token}"), proof.clone()),
            1 => (format!("DPoP {token}"), bad_proof),
            _ => (format!("DPoP {bad_token}"), bad_proof),
        };
        if auth == format!("DPoP {token}") && dpop == proof {
            continue;
        }
        let Ok(request) = http::Request::builder()
            .uri(PATH)
            .header("authorization", &auth)
            .header("dpop", &dpop)
            .body(String::new())
        else {
            continue; // not representable as a header value
        };
        let response = f.send(request).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 401, "status {status}");
    }
}
