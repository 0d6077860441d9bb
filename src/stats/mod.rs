//! (stats: being built; see ARCHITECTURE.md.)
