// Package channels maps a fleet's release channels to git revisions of the
// fleet (L43, L02) and reads the fleet as it was at a revision, through
// go-git: no git binary is needed.
//
// channels.yaml, at the top of the fleet directory:
//
//	channels:
//	  alpha: 4f1c2e9...   # a commit (full or short hash), tag or branch
//	  beta: v2026.11.3
//	  stable: 0b7d3a1...
//
// dev always follows the working tree. A channel without an entry follows
// the working tree too. A fleet that is not in a git repository has one
// implicit revision, "working-tree", which every channel follows; there
// is nothing to promote there.
package channels
