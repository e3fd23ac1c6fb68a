//! What the word-count app ([`crate::WORDCOUNT_WASM`]) reads and writes.
//!
//! It reads every regular file under `/in` (the task's input files and the deal's dataset) and
//! writes one JSON object, with its keys in this order and one space after each `:` and `,`:
//! `{"files": N, "words": W, "lines": L, "bytes": B, "top": [["word", count], ...]}` and a
//! newline. A word is a maximal run of alphanumeric characters, lowercased; `top` holds up to
//! [`TOP_WORDS`] words, by count descending then word ascending. No `/in` gives zero counts.

/// The file the app writes in `/out`.
pub const COUNTS_FILE: &str = "counts.json";

/// How many of the most frequent words `top` lists.
pub const TOP_WORDS: usize = 20;
