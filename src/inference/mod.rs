//! (inference: being built; see ARCHITECTURE.md.)
