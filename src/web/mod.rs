//! (web: being built; see ARCHITECTURE.md.)
