// Package docs holds the tests that keep the repository's Markdown honest:
// every relative link and image resolves, every #anchor names a heading,
// every README has its 中文 section before its English one, and the root
// README stays a five-minute read. It has no code of its own.
package docs
