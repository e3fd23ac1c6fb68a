//! Ship the demo task apps (Mandelbrot tiles, word count) as WebAssembly built from source, with the host side that splits and assembles their work.
//!
//! The modules are compiled from `apps/` in this repository by the build script (for
//! wasm32-wasip1, release profile) and embedded here, so a deal's app is always the code next to
//! it. [`mandelbrot`] describes how a picture is cut into tasks (one tile each) and puts the
//! tiles back together; [`wordcount`] names what the word-count app writes.
//!
//! **Invariant:** the embedded modules are built only from `apps/*/src` with no dependencies:
//! what a worker runs can be rebuilt and checked byte for byte from this repository.

pub mod mandelbrot;
pub mod oci_wordcount;
pub mod wordcount;

/// The Mandelbrot app for wasm32-wasip1: renders one tile of a picture per task.
///
/// Arguments `WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER]` (see [`mandelbrot::Tiling::params`]),
/// task index in [`mandelbrot::TASK_INDEX_ENV`], output [`mandelbrot::TILE_FILE`] in `/out`.
pub const MANDELBROT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mandelbrot.wasm"));

/// The word-count app for wasm32-wasip1: counts the files, lines, words and bytes under `/in`
/// and writes [`wordcount::COUNTS_FILE`] to `/out`.
pub const WORDCOUNT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wordcount.wasm"));

/// Why a tiling or an app's output was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// A parameter is zero or above its limit.
    #[error("{name} must be from 1 to {max}, got {value}")]
    OutOfRange {
        /// The parameter, as the app names it (`WIDTH`, `TILES_X`, …).
        name: &'static str,
        /// The value given.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The picture has more tiles than one bag may hold.
    #[error("{tiles_x} x {tiles_y} tiles is more than the limit of {max} tiles")]
    TooManyTiles {
        /// Tiles across.
        tiles_x: u32,
        /// Tiles down.
        tiles_y: u32,
        /// The most tiles allowed.
        max: u64,
    },
    /// A side of the picture does not split into equal tiles.
    #[error("{name} {size} is not divisible by {tiles_name} {tiles}")]
    NotDivisible {
        /// `WIDTH` or `HEIGHT`.
        name: &'static str,
        /// The side, pixels.
        size: u32,
        /// `TILES_X` or `TILES_Y`.
        tiles_name: &'static str,
        /// Tiles along that side.
        tiles: u32,
    },
    /// One tile has more pixels than a task may render.
    #[error("a tile of {tile_width} x {tile_height} pixels is above the limit of {max_px} pixels")]
    TileTooLarge {
        /// Tile width, pixels.
        tile_width: u32,
        /// Tile height, pixels.
        tile_height: u32,
        /// The most pixels allowed in a tile.
        max_px: u64,
    },
    /// Deal params that do not read as `WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER]`.
    #[error("params {params:?} are not `WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER]`: {reason}")]
    BadParams {
        /// The params given.
        params: String,
        /// What is wrong with them.
        reason: String,
    },
    /// Tiles are missing for some tasks.
    #[error("no tile for task indices {}", list(.missing))]
    MissingTiles {
        /// The indices of the tasks without a tile, ascending.
        missing: Vec<u64>,
    },
    /// A tile for a task index the tiling does not have.
    #[error("tile for task index {index} is outside the tiling's {tasks} tasks")]
    UnknownTile {
        /// The tile's task index.
        index: u64,
        /// Tasks in the tiling.
        tasks: u64,
    },
    /// Two tiles for one task index.
    #[error("more than one tile for task index {index}")]
    DuplicateTile {
        /// The task index.
        index: u64,
    },
    /// A tile that is not a binary PPM image with maxval 255.
    #[error("tile for task index {index} is not a valid PPM image: {reason}")]
    MalformedTile {
        /// The tile's task index.
        index: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A tile whose size differs from the tiling's.
    #[error(
        "tile for task index {index} is {width} x {height} pixels, expected {expected_width} x \
         {expected_height}"
    )]
    WrongTileSize {
        /// The tile's task index.
        index: u64,
        /// Its width, pixels.
        width: u32,
        /// Its height, pixels.
        height: u32,
        /// The tiling's tile width, pixels.
        expected_width: u32,
        /// The tiling's tile height, pixels.
        expected_height: u32,
    },
    /// The PNG encoder refused the picture.
    #[error("cannot encode the picture as PNG: {0}")]
    Encode(String),
}

/// Up to 20 indices, then how many more.
fn list(indices: &[u64]) -> String {
    const SHOWN: usize = 20;
    let mut text = indices.iter().take(SHOWN).map(u64::to_string).collect::<Vec<_>>().join(", ");
    if indices.len() > SHOWN {
        text.push_str(&format!(" and {} more", indices.len() - SHOWN));
    }
    text
}
