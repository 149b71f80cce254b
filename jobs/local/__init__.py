"""The local emulators: moto server (AWS), Azurite (Blob Storage) and the ftops Azure emulator."""
