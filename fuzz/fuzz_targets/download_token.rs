//! Download tokens (SPEC §4.6): an encoded grant verifies back to the same grant (or expires
//! exactly when its time has passed), any single-byte change of a token fails verification,
//! and a token text the fuzzer makes up never verifies.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vypusk_formats::token::{self, DownloadGrant, TokenError};

#[derive(Arbitrary, Debug)]
struct Input {
    secret: Vec<u8>,
    d: i32,
    f: i32,
    k: Option<String>,
    c: bool,
    e: i64,
    conf: String,
    cv: String,
    iv: String,
    now: i64,
    change_at: usize,
    change_to: u8,
    made_up: String,
}

fuzz_target!(|input: Input| {
    let grant = DownloadGrant {
        d: input.d,
        f: input.f,
        k: input.k,
        c: input.c,
        e: input.e,
        conf: input.conf,
        cv: input.cv,
        iv: input.iv,
    };
    let secret = &input.secret;
    let issued = token::encode(secret, &grant);
    let expected = if grant.e < input.now {
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

    if input.made_up != issued {
        assert!(
            token::verify(secret, &input.made_up, i64::MIN).is_err(),
            "a made-up token verified: {:?}",
            input.made_up
        );
    }
});
