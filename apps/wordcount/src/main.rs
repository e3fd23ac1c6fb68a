//! Count the files, lines, words and bytes under /in and list the most frequent words: a data-parallel demo app for wasm32-wasip1.
//!
//! Reads every regular file under `/in` (recursively, in path order; symbolic links are not
//! followed) — or, in a bag with one task per input file (`IEXEC_INPUT_FILES_NUMBER` equals
//! `IEXEC_BOT_SIZE`), only input file `IEXEC_BOT_TASK_INDEX + 1`, the task's chunk — and
//! writes `/out/counts.json`:
//!
//! ```text
//! {"files": 2, "words": 3, "lines": 2, "bytes": 8, "top": [["a", 2], ["b", 1]]}
//! ```
//!
//! A word is a maximal run of alphanumeric characters (Unicode), lowercased; bytes that are not
//! valid UTF-8 separate words like spaces do. A line is a newline-terminated run of bytes, or
//! the unterminated run at the end of a file. `top` lists up to 20 words, most frequent first,
//! ties in byte order of the word. The output's bytes depend only on the input's contents.
//! No input file at all (no `/in`, or nothing in it) is refused: counting nothing is never
//! what a requester meant.
//!
//! Arguments are ignored. Exit codes: 0 done, 1 an input could not be read or the output
//! written, 2 no input at all.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the inputs are mounted.
const INPUT_DIR: &str = "/in";
/// Why a task without input files is refused.
const NO_INPUT: &str = "no input files: give them with `xiebao run wordcount --input-file URL` (one per task, or all of them for each task)";
/// Where the counts are written.
const OUTPUT_PATH: &str = "/out/counts.json";
/// How many of the most frequent words are listed.
const TOP_WORDS: usize = 20;
/// Bytes read from a file at a time.
const CHUNK_BYTES: usize = 64 << 10;

/// Running totals over all files.
#[derive(Default)]
struct Counts {
    files: u64,
    words: u64,
    lines: u64,
    bytes: u64,
    frequency: BTreeMap<String, u64>,
    /// The word being read, lowercased; empty between words.
    word: String,
}

impl Counts {
    fn text(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_alphanumeric() {
                self.word.extend(c.to_lowercase());
            } else {
                self.end_word();
            }
        }
    }

    fn end_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        self.words += 1;
        let word = std::mem::take(&mut self.word);
        *self.frequency.entry(word).or_insert(0) += 1;
    }

    /// Decodes `bytes` as UTF-8, invalid sequences acting as separators.
    fn bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            self.text(chunk.valid());
            if !chunk.invalid().is_empty() {
                self.end_word();
            }
        }
    }

    fn file(&mut self, path: &Path) -> std::io::Result<()> {
        let mut file = File::open(path)?;
        // Room for a chunk plus the up to 3 bytes of a character cut by the previous read.
        let mut buffer = vec![0_u8; CHUNK_BYTES + 3];
        let mut kept = 0;
        let mut last = None;
        loop {
            let read = file.read(&mut buffer[kept..kept + CHUNK_BYTES])?;
            if read == 0 {
                break;
            }
            let fresh = &buffer[kept..kept + read];
            self.bytes += read as u64;
            self.lines += fresh.iter().filter(|&&b| b == b'\n').count() as u64;
            last = fresh.last().copied();
            let end = kept + read;
            let cut = incomplete_tail(&buffer[..end]);
            self.bytes(&buffer[..cut]);
            buffer.copy_within(cut..end, 0);
            kept = end - cut;
        }
        // A character still cut at the end of the file is invalid: a separator.
        self.bytes(&buffer[..kept]);
        self.end_word();
        if last.is_some_and(|b| b != b'\n') {
            self.lines += 1;
        }
        self.files += 1;
        Ok(())
    }

    fn json(&self) -> String {
        let mut top: Vec<(&String, &u64)> = self.frequency.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        top.truncate(TOP_WORDS);
        let top: Vec<String> =
            top.iter().map(|(word, count)| format!("[{}, {count}]", json_string(word))).collect();
        format!(
            "{{\"files\": {}, \"words\": {}, \"lines\": {}, \"bytes\": {}, \"top\": [{}]}}\n",
            self.files,
            self.words,
            self.lines,
            self.bytes,
            top.join(", ")
        )
    }
}

/// Where the bytes stop being complete UTF-8: the start of a multi-byte character cut short at
/// the end, or the end itself. Such a character's first byte is among the last 3.
fn incomplete_tail(bytes: &[u8]) -> usize {
    let end = bytes.len();
    for start in (end.saturating_sub(3)..end).rev() {
        let needed = match bytes[start] {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => continue,
        };
        return if start + needed > end { start } else { end };
    }
    end
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let path = entry.path();
        let kind =
            entry.file_type().map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if kind.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// In a bag with one task per input file, task `i` counts input file `i + 1` only (its chunk).
fn own_chunk() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok();
    let files: u64 = var("IEXEC_INPUT_FILES_NUMBER")?.parse().ok()?;
    let bag: u64 = var("IEXEC_BOT_SIZE")?.parse().ok()?;
    let index: u64 = var("IEXEC_BOT_TASK_INDEX")?.parse().ok()?;
    if files != bag || index >= files {
        return None;
    }
    var(&format!("IEXEC_INPUT_FILE_NAME_{}", index + 1))
}

fn count() -> Result<Counts, String> {
    let mut counts = Counts::default();
    let root = Path::new(INPUT_DIR);
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        // Not mounted: a task without input files.
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(NO_INPUT.to_owned()),
        Ok(_) => return Err(format!("{INPUT_DIR} is not a directory")),
        Err(e) => return Err(format!("cannot open {INPUT_DIR}: {e}")),
    }
    let files = match own_chunk() {
        Some(file) => vec![root.join(file)],
        None => {
            let mut files = Vec::new();
            walk(root, &mut files)?;
            files.sort();
            files
        }
    };
    if files.is_empty() {
        return Err(NO_INPUT.to_owned());
    }
    for path in &files {
        counts.file(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    Ok(counts)
}

fn main() -> ExitCode {
    let counts = match count() {
        Ok(counts) => counts,
        Err(message) => {
            eprintln!("wordcount: {message}");
            return ExitCode::from(if message == NO_INPUT { 2 } else { 1 });
        }
    };
    if let Err(e) = std::fs::write(OUTPUT_PATH, counts.json()) {
        eprintln!("wordcount: cannot write {OUTPUT_PATH}: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
