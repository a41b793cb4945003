//! Parse + metrics + smells + every output format over arbitrary bytes: the first byte
//! picks the language, the rest is the source. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    refactor_ai::fuzz_analyze(data);
});
