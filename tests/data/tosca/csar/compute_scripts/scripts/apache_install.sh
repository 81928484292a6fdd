#!/bin/sh
set -e
echo apache_install.sh
