//! What `backup`, `backup verify` and `restore` share: the backup location and its layout,
//! opening a backup with the root-key material its store used, and reading sealed parts back
//! with every checksum checked (`strongroom_core::backup` is the format).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Args;
use strongroom_core::backup::{BackupKey, Manifest, ObjectCopy, MANIFEST};
use strongroom_core::seal;
use strongroom_core::CoreError;
use strongroom_crypto::keyed_hash::Sha256;
use strongroom_crypto::{Key, Root};
use strongroom_objects::{BlobStore, ObjectLocation};

use crate::current_root::CurrentRootArgs;
use crate::kms_flags::KmsArgs;
use crate::s3_flags::S3Args;
use crate::store_args::StoreArgs;

/// The root-key material and connections a command needs to open a backup.
#[derive(Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub current: CurrentRootArgs,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

/// A backup's location: the backup itself at its root, the copied file objects under
/// `objects/` (named as in a files location, so a piece store opens them).
pub struct BackupLocation {
    pub root: BlobStore,
    pub objects: BlobStore,
}

impl BackupLocation {
    pub fn open(s3: &S3Args, location: &str, what: &str) -> Result<Self> {
        let parsed: ObjectLocation = location.parse().with_context(|| what.to_string())?;
        if parsed == ObjectLocation::Memory {
            bail!("{what}: a backup needs a folder or s3://bucket/prefix");
        }
        Ok(Self {
            root: s3.open_location(&parsed, what)?,
            objects: s3.open_location(&parsed.join("objects"), what)?,
        })
    }

    pub fn manifest(&self) -> Result<Manifest> {
        let bytes = self
            .root
            .get_named(MANIFEST)
            .context("reading the backup")?
            .context(
                "there is no backup here (no manifest.json: it was never made or not finished)",
            )?;
        Ok(Manifest::parse(&bytes)?)
    }
}

/// The piece object of a sealed part.
pub fn piece_path(part: &str, index: u64) -> String {
    format!("{part}/{index:08}")
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(strongroom_crypto::keyed_hash::sha256(&[bytes]))
}

/// The root key of the store a manifest was made from, opened with the material given (as
/// `keys rotate-root` takes it), and the backup key under it.
pub fn open_backup(args: &OpenArgs, manifest: &Manifest) -> Result<(Key<Root>, BackupKey)> {
    let root = open_root(args, manifest)?;
    let key = BackupKey::open(&root, manifest).map_err(explain_wrong_root)?;
    Ok((root, key))
}

/// The root key the manifest's store copies and key check value accept, opened with the
/// material given.
pub fn open_root(args: &OpenArgs, manifest: &Manifest) -> Result<Key<Root>> {
    let root = open_root_with(args, &|key| manifest.root_meta(key)).map_err(|e| match e
        .downcast::<CoreError>()
    {
        Ok(core) => explain_wrong_root(core),
        Err(other) => other,
    })?;
    let check = manifest
        .root_meta(seal::ROOT_CHECK_META)?
        .context("the store has no key check value (it was never opened)")?;
    seal::check_root(&root, &check).map_err(explain_wrong_root)?;
    Ok(root)
}

/// The root key opened with the material the flags give, from the stored root-key copies
/// `meta` reads (a store's `meta` table, or a backup manifest's copies); not yet checked.
pub fn open_root_with(
    args: &OpenArgs,
    meta: &dyn Fn(&str) -> strongroom_core::CoreResult<Option<Vec<u8>>>,
) -> Result<Key<Root>> {
    let source = seal::source_from(meta)?;
    let kms = args.kms.client(source == Some(seal::KeySource::Kms))?;
    let material = args.current.material(&args.store, source)?;
    Ok(seal::open_root_from(meta, kms.as_ref(), material)?)
}

fn explain_wrong_root(e: CoreError) -> anyhow::Error {
    match e {
        CoreError::WrongRootKey => anyhow::anyhow!(
            "this backup was made under a different root key than the one given: restore it with \
             the root key (or passphrase, KMS key or shares) its store had when it was taken — \
             after `keys rotate-root`, older backups still need the old key"
        ),
        other => anyhow::Error::new(other),
    }
}

/// Decrypts part `name` of the backup into `out` (a new file), checking every piece's stored
/// checksum, the AEAD of each, and the plaintext's size and SHA-256.
pub fn restore_part(
    backup: &BackupLocation,
    key: &BackupKey,
    manifest: &Manifest,
    name: &str,
    out: &Path,
) -> Result<()> {
    let part = manifest
        .parts
        .iter()
        .find(|p| p.name == name)
        .with_context(|| format!("the manifest has no `{name}` part"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let mut whole = Sha256::default();
    let mut size = 0u64;
    let count = part.pieces.len() as u64;
    for (i, piece) in part.pieces.iter().enumerate() {
        let index = i as u64;
        if piece.index != index {
            bail!("the backup's `{name}` part lists its pieces out of order");
        }
        let sealed = backup
            .root
            .get_named(&piece_path(name, index))
            .context("reading the backup")?
            .with_context(|| format!("piece {index} of `{name}` is missing from the backup"))?;
        if sealed.len() as u64 != piece.size || hex_sha256(&sealed) != piece.sha256 {
            bail!("piece {index} of `{name}` was altered or damaged (checksum)");
        }
        let plain = key
            .open_piece(name, index, index + 1 == count, &sealed)
            .with_context(|| format!("piece {index} of `{name}`"))?;
        whole.update(&plain);
        size += plain.len() as u64;
        file.write_all(&plain)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("writing {}", out.display()))?;
    if size != part.size || hex::encode(whole.finish()) != part.sha256 {
        bail!("the `{name}` part does not match its checksum after decryption");
    }
    Ok(())
}

/// Checks that every copied object piece is in the backup with its length and checksum;
/// returns a problem per piece that is not.
pub fn check_objects(backup: &BackupLocation, objects: &[ObjectCopy]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for object in objects {
        for piece in &object.pieces {
            let found = backup.objects.get_piece_blocking(&object.id, piece.index);
            match found {
                Ok(bytes)
                    if bytes.len() as u64 == piece.size && hex_sha256(&bytes) == piece.sha256 => {}
                Ok(_) => problems.push(format!(
                    "object {} piece {} was altered (checksum)",
                    object.id, piece.index
                )),
                Err(e) => problems.push(format!("object {} piece {}: {e}", object.id, piece.index)),
            }
        }
    }
    Ok(problems)
}

/// Copies one object's pieces from `from` into `to` (bytes as they are).
pub fn copy_object(from: &BlobStore, to: &BlobStore, object: &ObjectCopy) -> Result<()> {
    for piece in &object.pieces {
        from.copy_piece_to(&object.id, piece.index, to)
            .with_context(|| format!("copying object {} piece {}", object.id, piece.index))?;
    }
    Ok(())
}

/// Writes one sealed piece into the backup; returns its checksum entry.
pub fn put_piece(
    backup: &BackupLocation,
    path: &str,
    index: u64,
    sealed: Vec<u8>,
) -> Result<strongroom_core::backup::PieceSum> {
    let sum = strongroom_core::backup::PieceSum {
        index,
        size: sealed.len() as u64,
        sha256: hex_sha256(&sealed),
    };
    backup
        .root
        .put_named(path, Bytes::from(sealed))
        .context("writing the backup")?;
    Ok(sum)
}
