// Shared code folder: never loaded as a widget (ignore_folders = ["common"]).
throw new Error('common must never be loaded as a widget');
