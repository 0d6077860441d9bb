//! (board: being built; see ARCHITECTURE.md.)
