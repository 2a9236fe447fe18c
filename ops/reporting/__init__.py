"""CI reporting: a stack's preview as a pull-request comment (`platform preview-comment`), one
issue per drifted stack (`platform drift-issues`), and the GitHub calls that post them."""
