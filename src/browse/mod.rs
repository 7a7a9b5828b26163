//! What the archives hold, without restoring them: one archive's entries (from its index,
//! or by reading the archive when the index is missing or damaged), a generation's tree
//! (for an incremental one, resolved through its chain), and one file's contents, read
//! from where the index says it starts.

mod catalog;
pub mod names;
mod stored;
mod view;

pub use catalog::Catalog;
pub use view::{Item, Resolver, View, child_name};
