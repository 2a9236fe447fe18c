"""CI reporting: a stack's preview as a pull-request comment (`platform preview-comment`), one
issue per drifted stack (`platform drift-issues`), the stack files a run changed as one pull
request (`platform pull-request`), and the GitHub calls that make them."""
