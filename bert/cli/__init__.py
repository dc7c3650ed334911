"""The command line ``bert``: ``parser`` (the commands, their arguments and help), ``commands``
(what each one does); ``bert/__main__.py`` runs a command."""
