//! (model: being built; see ARCHITECTURE.md.)
