//! Download tokens (SPEC §4.6, issue 9): an encoded grant verifies back to the same grant (or
//! expires exactly when its time has passed), any single-byte change of a token fails
//! verification, and a token text the fuzzer makes up never verifies under a secret it has
//! never seen a token of. (Under its own secret it can replay a token issued in an earlier run
//! for another grant: libFuzzer learns the issued text from the comparison below. That token
//! is genuine, not forged.)
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vypusk_formats::token::{self, DownloadGrant, TokenError};

#[derive(Arbitrary, Debug)]
struct Input {
    secret: Vec<u8>,
    distribution: i32,
    release: i32,
    license: Option<i32>,
    count: bool,
    expires: i64,
    conf: String,
    conf_version: String,
    installed_version: String,
    now: i64,
    change_at: usize,
    change_to: u8,
    made_up: String,
}

/// Fields longer than the token keeps are cut; keep the inputs within it so the round trip is
/// exact (the cut itself is unit-tested).
fn short(s: String) -> String {
    s.chars().take(60).collect()
}

/// A secret no token of this target is ever issued under.
const UNSEEN_SECRET: &[u8] = b"vypusk fuzz: never issues tokens";

fuzz_target!(|input: Input| {
    let grant = DownloadGrant {
        distribution: input.distribution,
        release: input.release,
        license: input.license,
        count: input.count,
        expires: input.expires,
        conf: if input.count { short(input.conf) } else { String::new() },
        conf_version: if input.count { short(input.conf_version) } else { String::new() },
        installed_version: if input.count {
            short(input.installed_version)
        } else {
            String::new()
        },
    };
    let secret = &input.secret;
    let issued = token::encode(secret, &grant);
    let expected = if grant.expires < input.now {
        Err(TokenError::Expired)
    } else {
        Ok(grant.clone())
    };
    assert_eq!(token::verify(secret, &issued, input.now), expected);

    let mut changed = issued.clone().into_bytes();
    let at = input.change_at % changed.len();
    if changed[at] != input.change_to {
        changed[at] = input.change_to;
        if let Ok(changed) = String::from_utf8(changed) {
            let verdict = token::verify(secret, &changed, i64::MIN);
            assert!(
                matches!(
                    verdict,
                    Err(TokenError::BadSignature | TokenError::Malformed)
                ),
                "{issued} changed at {at} to {changed}: {verdict:?}"
            );
        }
    }

    assert!(
        token::verify(UNSEEN_SECRET, &input.made_up, i64::MIN).is_err(),
        "a made-up token verified: {:?}",
        input.made_up
    );
});
