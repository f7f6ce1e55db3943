// Never loaded: this folder is in widgets.ignore_folders.
throw new Error('the common folder must not be loaded as a widget');
