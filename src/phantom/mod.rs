//! (phantom: being built; see ARCHITECTURE.md.)
