#!/bin/sh
set -e
echo apache_start.sh
