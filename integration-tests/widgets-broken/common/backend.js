this folder is ignored, so this syntax error is never seen (
