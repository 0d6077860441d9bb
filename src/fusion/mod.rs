//! (fusion: being built; see ARCHITECTURE.md.)
