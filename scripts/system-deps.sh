#!/usr/bin/env bash
# Debian packages the tests and evaluations use. Installs only as root with apt-get
# available and only what is missing; elsewhere it says what to install and carries on.
set -u
pkgs=()
[ -d /usr/share/datasets/fashion-mnist ] || pkgs+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
[ -f /usr/share/wordnet/data.noun ] || pkgs+=(wordnet-base)  # word search: "dog" -> every breed
[ -f /usr/share/mricron/templates/ch2.nii.gz ] || pkgs+=(mricron-data)  # scans: the Colin27 template (eval brain-slices)
[ -x /usr/sbin/Orthanc ] || pkgs+=(orthanc)  # scans: a real PACS for the DICOMweb tests
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || pkgs+=(orthanc-dicomweb)
[ -f /usr/share/orthanc/plugins/libOrthancGdcm.so ] || pkgs+=(orthanc-gdcm)
[ -d /usr/share/icons/gnome/48x48 ] || pkgs+=(gnome-icon-theme)  # the icons domain of `lookalike eval suite`
# The photos-hard domain of `lookalike eval suite`: wallpaper photographs and puzzle photos.
[ -d /usr/share/backgrounds/mate/nature ] || pkgs+=(mate-backgrounds)
[ -d /usr/share/palapeli/collection ] || pkgs+=(palapeli-data)
[ -d /usr/share/wallpapers/Path ] || pkgs+=(plasma-workspace-wallpapers)
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || echo "warning: apt-get install ${pkgs[*]} failed; tests that need them will be skipped"
else
  echo "note: install ${pkgs[*]} (Debian) for the tests that use them; those tests are skipped otherwise"
fi
