//! Listings: one page, or every page (the rest fetched several at a time
//! once the first says how many there are).

use super::call::{Auth, Call};
use super::handle::Sub2apiClient;
use super::settings::PAGE_ITEM_BYTES;
use crate::envelope::Page;
use crate::error::Result;
use reqwest::Method;
use serde::de::DeserializeOwned;

impl Sub2apiClient {
    /// Fetches one page of a paginated listing.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        page: u32,
        page_size: u32,
    ) -> Result<Page<T>> {
        self.page_as(path, filters, page, page_size, Auth::Admin)
            .await
    }

    pub(crate) async fn page_as<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        page: u32,
        page_size: u32,
        auth: Auth<'_>,
    ) -> Result<Page<T>> {
        let mut call = Call::new(Method::GET, path, auth);
        call.query.extend(filters.iter().cloned());
        let mut call = call.query("page", page).query("page_size", page_size);
        call.max_body = Some(
            self.inner
                .max_body
                .saturating_add((page_size as usize).saturating_mul(PAGE_ITEM_BYTES)),
        );
        self.typed(call, &[]).await
    }

    /// Every item of a paginated listing at the client's page size.
    ///
    /// The first page says how many there are; the rest are then fetched
    /// several at a time ([`ClientBuilder::pages_in_flight`](crate::ClientBuilder::pages_in_flight)) (in order, stopping at an empty page),
    /// so a long listing costs two round trips, not one per page. A host
    /// that reports no totals is read page by page until a short page.
    pub(crate) async fn list_all_as<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        auth: Auth<'_>,
    ) -> Result<Vec<T>> {
        self.list_all_sized(path, filters, auth, self.page_size())
            .await
    }

    /// [`Self::list_all_as`] at a page size of the caller's, for listings
    /// whose host handler caps it below the host-wide maximum.
    pub(crate) async fn list_all_sized<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        auth: Auth<'_>,
        size: u32,
    ) -> Result<Vec<T>> {
        use futures::{StreamExt, TryStreamExt};
        let first: Page<T> = self.page_as(path, filters, 1, size, auth).await?;
        let Some(pages) = first.page_count() else {
            return self
                .list_rest_sequentially(path, filters, auth, first, size)
                .await;
        };
        let mut out = first.items;
        if pages <= 1 || out.is_empty() {
            return Ok(out);
        }
        let last = u32::try_from(pages).unwrap_or(u32::MAX);
        let rest: Vec<Vec<T>> = futures::stream::iter(2..=last)
            .map(|page| self.page_as::<T>(path, filters, page, size, auth))
            .buffered(self.inner.pages_in_flight)
            .map_ok(|p| p.items)
            // A host that reports more pages than it has ends at an empty one.
            .try_take_while(|items| std::future::ready(Ok(!items.is_empty())))
            .try_collect()
            .await?;
        out.extend(rest.into_iter().flatten());
        Ok(out)
    }

    /// The pages after `first` of a host that reports no totals: a short
    /// page is the last one.
    async fn list_rest_sequentially<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
        auth: Auth<'_>,
        first: Page<T>,
        size: u32,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut page = 1u32;
        let mut next = Some(first);
        loop {
            let p: Page<T> = match next.take() {
                Some(p) => p,
                None => self.page_as(path, filters, page, size, auth).await?,
            };
            let got = p.items.len();
            let count = p.page_count();
            out.extend(p.items);
            let last = match count {
                Some(pages) => i64::from(page) >= pages,
                // Without totals, a short page is the last one.
                None => got < size as usize,
            };
            // A host that reports more pages but returns nothing would loop forever.
            if last || got == 0 || page == u32::MAX {
                break;
            }
            page += 1;
        }
        Ok(out)
    }

    /// Every item of an admin listing.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&'static str, String)],
    ) -> Result<Vec<T>> {
        self.list_all_as(path, filters, Auth::Admin).await
    }
}
